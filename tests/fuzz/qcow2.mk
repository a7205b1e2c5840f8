# SPDX-License-Identifier: GPL-2.0-or-later
# (the qcow2 image fuzz target goes here)
