"""Debugging the guest: the register view (regview), stops (stops), the `neve debug`
shell (shell), and the `neve gdb` remote stub (gdb, over rsp's packet framing)."""
