"""Who is asking and what they may do: passwords, sessions, tokens, the access policy."""
