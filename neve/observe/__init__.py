"""What a run shows: the event bus, statistics, the trap trace and the world-switch timeline."""
