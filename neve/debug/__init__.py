"""Stops, the debugger shell and the gdb remote stub."""
