#!/bin/sh
# Healthy once the real server answers on TCP: the init phase's temporary server listens on
# a private socket only, so this cannot pass before the init scripts are done.
exec mariadb-admin --protocol=tcp --host=127.0.0.1 --port=3306 --connect-timeout=2 ping >/dev/null 2>&1
