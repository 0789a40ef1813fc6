# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file connection type: connection_type.py ends in its TYPE. Host files and named
volumes, which file resources use too, are in ../host_files.py and ../apply/volumes.py."""
