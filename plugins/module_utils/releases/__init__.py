# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Releases of a stack (issue 35): what one apply that changed something made of the stack, recorded
on the Docker host so that any controller finds it, the last `releases_kept` kept.

store.py: where they live and how they are written (root-only, atomic) and read (as untrusted
data: bounded, schema-checked by schema.py). record.py: a release made from the engine as it runs
after an apply, and `record_release`, the appliers' hook. view.py: what may be shown of one (env
values that are secrets masked) and the drift of the running stack from one.
"""
