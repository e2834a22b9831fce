"""Clients in other dialects: their requests become OpenAI chat bodies, chat answers become theirs."""
