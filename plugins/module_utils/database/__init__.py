# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database connection type, one folder: connection_type.py ends in its TYPE; settings.py
builds the URL; sql_files.py reads and splits SQL files; rotation.py changes passwords in place;
engine.py is the interface a database engine implements, engine_<name>.py one engine each, and
engines.py lists them (a new engine is one file and one line there)."""
