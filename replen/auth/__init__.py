"""Who is calling and what they may do: identities, tokens, roles × stores (one policy)."""
