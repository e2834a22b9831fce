"""Who calls and where their spans go: keys, teams, callback secrets and the routing table."""
