# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += monitor/libmonitor.a
monitor_libmonitor_a_SOURCES =
