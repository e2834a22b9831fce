"""How exporters reach their destinations: the lean HTTP/1.1 client, URL policy, answer reading."""
