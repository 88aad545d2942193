"""Pure state machines for races, tournaments and chat rooms: events in, effects out."""
