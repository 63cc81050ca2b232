"""AI coding agents: the guard that reads an agent's shell command or file edit and blocks what would get around the gate."""
