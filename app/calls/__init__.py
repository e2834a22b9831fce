"""One call's record and its span: what came in, what went out, what it cost, scrubbed of secrets."""
