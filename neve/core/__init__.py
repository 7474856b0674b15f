"""One CPU running under L0: the Unicorn wrapper, the run loop, exception entry and the instructions neve completes beside Unicorn."""
