# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The way to the Docker engine (issue 33 makes this folder the only code that talks to it).

errors.py: the engine's errors, one set of types whichever way a request went, and the Docker
SDK, imported only when something needs it. unix_http.py: HTTP on a local engine's Unix socket
with the standard library. engine_api.py: the engine's API as the SDK's `APIClient` shapes it;
what a run of an unchanged stack asks goes over unix_http.py, everything else to the SDK.
"""
