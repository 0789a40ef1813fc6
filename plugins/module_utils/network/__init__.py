# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network connection type: connection_type.py ends in its TYPE. Docker network
primitives the stack shares (the default network) are in ../apply/networks.py."""
