# SPDX-License-Identifier: GPL-2.0-or-later
# (the block I/O benchmark goes here)
bench-block:
.PHONY: bench-block
