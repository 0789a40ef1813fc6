#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: database_connection
short_description: Connection string, readiness, schema and versioned migrations for PostgreSQL, MySQL and Redis
version_added: 0.1.0
description:
  - Builds the connection string for O(from_resource) from O(connection_string_template) and contributes
    it as O(env_var_name), for example C(DATABASE_URL=postgresql://postgres:secret123@postgres:5432/appdb).
    The host is the O(to_resource) name and the port its first declared container port.
  - With O(wait_for_ready), waits for a real login (psycopg for PostgreSQL, PyMySQL for MySQL and MariaDB,
    C(PING) for Redis), retried with backoff up to O(timeout); a wrong password fails at once.
  - Creates O(database_name) when the PostgreSQL or MySQL server has no database of that name (utf8mb4 on MySQL).
  - Applies O(schema_file) once, and each C(*.sql) file of O(migrations_dir) once, in natural version
    order (C(2_x.sql) before C(10_y.sql)). Each file runs in its own transaction together with its
    record (name and sha256) in the table C(public.clockwork_schema_migrations); a failing file rolls back
    completely and the error names the file, the line and the server's message. A file that ends the
    transaction itself (C(BEGIN), C(COMMIT), C(ROLLBACK) and the like, outside comments and strings) is
    refused before any file is applied. Concurrent runs are serialised by an advisory lock, waited for at
    most O(timeout) seconds; every session also has a C(lock_timeout).
  - MySQL and MariaDB commit DDL at once, so a file there runs statement by statement under C(GET_LOCK), recorded
    in C(clockwork_schema_migrations) of the connection's database. Before its first statement a row C(started)
    (name, checksum, statement count) is committed in C(clockwork_schema_failures); success replaces it by the
    applied record. A failing statement is named with the file, its line and the server's message, and the error
    says which statements took effect; the row turns C(failed) with how far it got. A run that finds either row,
    under the lock, refuses the file, naming the row, until it is removed (as Flyway's failed migrations wait for
    C(flyway repair)), so a run killed, or a server lost, half-way through a file never runs its statements twice.
  - Before the files of a run are applied to a MySQL or MariaDB database that holds tables, they are rehearsed on a
    copy (O(rehearse)) - C(mysqldump --single-transaction --routines --triggers --events) inside the server's
    container, loaded into a scratch database on the same server, the files applied there first. A file that
    fails on the copy never reaches the real database and leaves no row (the error names the file, the statement,
    its line and the server's words); the scratch database is dropped whatever happens. When every file passed,
    the dump is kept as a snapshot in the stack's volume C(<stack>-clockwork-snapshots) (the last O(snapshot_keep)
    per database), and a file that still fails on the real database names it - the stack role's
    C(clockwork_restore) puts it back, never anything by itself. Check mode makes no snapshot and no copy.
  - Before the files of a run are applied to a PostgreSQL database that holds tables, C(pg_dump -Fc) runs inside the
    server's container (the login in the exec's environment, its lock waits bounded by O(timeout); as the role the
    server's C(POSTGRES_PASSWORD) declares when the connection's may not read everything) and the dump is kept in the
    stack's volume C(<stack>-clockwork-snapshots), the last O(snapshot_keep) per database; a database larger than
    O(snapshot_max_mb) gets none, and the result says so. Each file still runs in one transaction - the snapshot is
    what O(restore_snapshot), or a stack's rollback with restore_data, puts back. Check mode makes none and says
    it would.
  - The snapshot taken before a run's files (all engines) is in the result as RV(snapshot), and a stack records it
    in its release.
  - On MySQL each session's C(lock_wait_timeout) and C(innodb_lock_wait_timeout) are O(timeout), and so are the
    driver's read and write timeouts, except for the statements of a file, which may run O(migration_timeout)
    seconds each before they are stopped on the server (C(KILL)), and the error names the file and the statement.
  - An applied file whose content changed is drift and is refused, naming the file and both checksums;
    for the schema file, O(reapply_schema) applies it again.
  - The connection string holds the password, so the task's result is hidden from all output
    (as with C(no_log)); the registered variable still holds it for M(clockwork.connections.container).
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - psycopg >= 3.1 (for PostgreSQL)
  - redis >= 4 (for Redis)
  - PyMySQL >= 1.0 (for MySQL and MariaDB)
  - docker (the Docker SDK for Python) >= 7.0
extends_documentation_fragment:
  - clockwork.connections.connection
  - clockwork.connections.connection.completion
options:
  engine:
    description: The database engine. C(mariadb) is the C(mysql) engine (MySQL 8, MariaDB 10.6 and later).
    type: str
    choices: [postgresql, redis, mysql, mariadb]
    default: postgresql
  connection_string_template:
    description:
      - Template with the placeholders C({user}), C({password}), C({host}), C({port}) and C({database});
        user, password and database are URL-encoded. An unknown placeholder is an error naming it.
      - Defaults to C(postgresql://{user}:{password}@{host}:{port}/{database}) for PostgreSQL,
        C(mysql://{user}:{password}@{host}:{port}/{database}) for MySQL, and for Redis to
        C(redis://:{password}@{host}:{port}/{database}), or C(redis://{host}:{port}/{database})
        without a password.
    type: str
  username:
    description: User to log in as. Defaults to C(postgres) for PostgreSQL, C(root) for MySQL; none for Redis.
    type: str
  password:
    description: Password. Never shown in any output.
    type: str
  database_name:
    description: Database name (PostgreSQL, MySQL) or number (Redis). Defaults to the user name, or C(0) for Redis.
    type: str
  schema_file:
    description:
      - SQL file applied once, a file of the controller beside the playbook. A relative path is looked up
        in the role's or playbook's C(files/), then the playbook's directory. The action plugin reads it
        into O(schema_content), so a remote Docker host needs no copy of it. PostgreSQL and MySQL only.
    type: path
  schema_content:
    description:
      - The SQL of O(schema_file), recorded under O(schema_file)'s base name. Set by the action plugin on the
        controller; give it directly only when calling the module without the collection's action plugin.
    type: str
  reapply_schema:
    description: Apply O(schema_file) again when its content changed since it was applied.
    type: bool
    default: false
  migrations_dir:
    description:
      - Directory of C(*.sql) migrations on the controller, each applied once in natural version order; read
        into O(migrations) by the action plugin, like O(schema_file). PostgreSQL and MySQL only.
    type: path
  migrations:
    description:
      - The migrations of O(migrations_dir), as read on the controller by the action plugin; applied in natural
        order of their names.
    type: list
    elements: dict
    suboptions:
      name:
        description: The migration's file name, recorded with its checksum.
        type: str
        required: true
      content:
        description: Its SQL.
        type: str
        required: true
  wait_for_ready:
    description: Wait for a real login, retried until O(timeout); without it one attempt is made.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the login, for clockwork's schema lock, and for a lock a statement waits for (C(lock_timeout)
        on PostgreSQL, C(lock_wait_timeout) and C(innodb_lock_wait_timeout) on MySQL).
    type: int
    default: 30
  cross_database:
    description:
      - MySQL and MariaDB - a file with C(USE) of another database, or a statement that names another database
        (C(other.orders), C(other.orders.id), C(other.f()), C(GRANT ... ON other.*), C(CREATE DATABASE other)) is
        refused before any change, naming the file, the line and the name, unless this is true. C(USE) moves the
        session, and with it the tracking rows and every later file; C(information_schema) may be read.
      - With it, the session is moved back to O(database_name) after each file, before its record.
    type: bool
    default: false
  rehearse:
    description:
      - MySQL and MariaDB - whether the files of a run are rehearsed on a copy of the database first, with a
        snapshot kept (see the description). The copy needs a user that may create a database, the connection's
        own or root with the password the server's env gives (C(MARIADB_ROOT_PASSWORD), C(MYSQL_ROOT_PASSWORD)).
      - V(auto) rehearses when the database holds tables and is under O(snapshot_max_mb), and a copy can stand in
        for it (no file names the database itself, as C(shop.t), nor, with O(cross_database), another one);
        otherwise, or without such a user, the files are applied without a rehearsal and the result says why.
      - V(always) rehearses whatever the size, and refuses before any change when it cannot.
      - V(never) applies the files without a rehearsal or snapshot.
      - It costs a dump and a load of the database on each run that applies files, and the snapshot's space.
    type: str
    choices: [auto, always, never]
    default: auto
  snapshot_keep:
    description:
      - How many snapshots of each database (PostgreSQL, MySQL, MariaDB; Redis's copies with O(snapshot)) the stack's
        volume keeps, the newest.
      - Beyond those, a snapshot that one of the stack's kept releases records (the last C(releases_kept) on the
        Docker host) is kept as long as that release is, so a rollback with restore_data to any kept release finds
        it; once its release is pruned, it goes at the next snapshot of its database. A snapshot taken outside a
        stack's run (this module alone) is recorded by no release and counts only here. Old snapshots are removed
        when a new one is kept, never in check mode.
    type: int
    default: 3
  snapshot_max_mb:
    description:
      - PostgreSQL - a database larger than this (C(pg_database_size)) is not snapshotted before its files, and the
        result says so.
      - MySQL and MariaDB - with O(rehearse=auto), a database whose tables take more megabytes than this (data and
        indexes, as C(information_schema.tables) counts them) is not rehearsed nor snapshotted.
      - Redis - a copy larger than this is not restored.
    type: int
    default: 1024
  snapshot:
    description:
      - Redis - keep an RDB copy of the server's data (C(redis-cli --rdb) inside its container) in the stack's volume
        C(<stack>-clockwork-snapshots) on each run of the stack that changes something, recorded in its release (the
        last O(snapshot_keep)). It is no change of its own, and the single module (outside a stack) keeps none. A
        rollback with restore_data, or O(restore_snapshot), puts one back - the server stopped, its RDB file
        replaced, started again; a server with C(appendonly yes) is refused. Check mode keeps none.
      - PostgreSQL, MySQL and MariaDB keep their snapshots before their files by themselves; V(true) is refused for them.
    type: bool
    default: false
  restore_snapshot:
    description:
      - Put O(database_name) back as this snapshot (of the stack's volume) has it, and do nothing else - its state
        before is kept as a snapshot first, then the database is dropped, created again (PostgreSQL - with the owner,
        encoding and locale the snapshot recorded, as the server's own role when it logs in) and loaded (PostgreSQL -
        C(pg_restore --single-transaction)). Redis - the server is stopped, the copy put in place of its RDB file,
        and started again. Rows written since the snapshot are gone, so a stack never does it; the stack role's
        C(clockwork_restore) variable sets it, and a stack's rollback with restore_data.
    type: str
  migration_timeout:
    description:
      - Seconds a schema or migration file may run on PostgreSQL (C(statement_timeout) of its transaction), or each
        statement of a file on MySQL; one that takes longer is stopped, and the error names the file (and on MySQL
        the statement and its line).
    type: int
    default: 600
  env_var_name:
    description:
      - Env variable contributed to O(from_resource), holding the connection string. Defaults to C(DATABASE_URL),
        or C(REDIS_URL) for Redis.
      - The empty string contributes no connection string, only the parts of O(env).
    type: str
  env:
    description:
      - Connection parts as env variables of O(from_resource), for applications that read parts rather than a URL,
        for example C(WORDPRESS_DB_HOST) set to the template C({host}:{port}) and C(WORDPRESS_DB_PASSWORD) to C({password}).
      - A mapping of variable name to a template with the placeholders of O(connection_string_template), filled
        with the values as they are (not URL-encoded). An unknown placeholder, or a name that another connection
        or the container's own env sets differently, is refused before any change.
      - A value holding C({password}) is masked everywhere and follows a password rotation.
    type: dict
  password_delivery:
    description:
      - How O(from_resource) gets each value holding the password (the connection string and the parts of O(env)
        with C({password})).
      - V(env) puts it in the env.
      - V(file) writes it to a file of mode 0400 under C(~/.clockwork/<stack>/secrets/) on the Docker host, mounted
        read-only at C(/run/secrets/<NAME>), and sets C(<NAME>_FILE) to that path, as Compose's secrets do, so that
        C(docker inspect) shows no password. A rotation rewrites the file and restarts the running O(from_resource).
        On Swarm, every secret already reaches a service as such a file.
    type: str
    choices: [env, file]
    default: env
  login_host:
    description:
      - Address where this module reaches the server. Defaults to the O(to_resource) container's address,
        which the Docker host can reach on Linux; set it (with a published port) on Docker Desktop.
    type: str
  login_port:
    description: Port for O(login_host). Defaults to the container port.
    type: int
"""

EXAMPLES = r"""
- name: The seed's connection; api gets DATABASE_URL
  clockwork.connections.database_connection:
    from: api
    to: postgres
    connection_string_template: "postgresql://{user}:{password}@{host}:{port}/{database}"
    username: postgres
    password: "{{ vault_postgres_password }}"
    database_name: appdb
    schema_file: schema.sql
    migrations_dir: migrations
    timeout: 30
    stack: shop
  register: db

- name: Redis with a password; api gets REDIS_URL
  clockwork.connections.database_connection:
    from: api
    to: redis
    engine: redis
    password: "{{ vault_redis_password }}"
    stack: shop
  register: cache

- name: The api container with both
  clockwork.connections.container:
    name: api
    image: nginx:1.27
    contributions: ["{{ db.contribution }}", "{{ cache.contribution }}"]
    stack: shop
"""

RETURN = r"""
database:
  description: The connection's settings, without the password.
  returned: always
  type: dict
  sample: {engine: postgresql, host: postgres, port: 5432, user: postgres, database: appdb, env_var_name: DATABASE_URL}
snapshot_before_restore:
  description: With O(restore_snapshot), the snapshot of the database as it was before the restore.
  returned: when a restore replaced an existing database
  type: str
snapshot:
  description: The snapshot taken before this run's files (Redis - the copy kept for the release).
  returned: when one was taken
  type: dict
  contains:
    name:
      description: Its name in the stack's volume.
      type: str
    created:
      description: When it was taken (UTC).
      type: str
    size:
      description: Its size in bytes.
      type: int
    volume:
      description: The stack's snapshot volume.
      type: str
    kind:
      description: V(pg_dump), V(mysqldump) or V(rdb).
      type: str
  sample: {name: appdb-20261206T205500Z-3a7618, created: "2026-12-06 20:55:00 UTC", size: 2440,
           volume: shop-clockwork-snapshots, kind: pg_dump}
restore:
  description: With O(restore_snapshot), the snapshot put back and what it loses.
  returned: when a restore ran (or, in check mode, would)
  type: dict
  contains:
    snapshot:
      description: Its name.
      type: str
    created:
      description: When it was taken (UTC).
      type: str
    size:
      description: Its size in bytes.
      type: int
    lost:
      description: What the restore loses, as C(rows written to appdb after 2026-12-06 20:55:00 UTC are lost).
      type: str
pending:
  description: Schema and migration files not applied yet (in check mode, what would be applied).
  returned: when the server could be reached, or does not exist yet
  type: list
  elements: str
  sample: [schema schema.sql, migration 2_add_index.sql]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.database import connection_type as database
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import (
    connection_spec, run_connection)


def main():
    module = AnsibleModule(argument_spec=connection_spec(database.TYPE.args), supports_check_mode=True)
    run_connection(module, database.TYPE)


if __name__ == "__main__":
    main()
