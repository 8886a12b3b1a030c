"""Share links for recipients outside the practice: the store, the rules, the streamed zip."""
