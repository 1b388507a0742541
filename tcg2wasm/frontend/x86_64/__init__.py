"""x86-64 front end: iced-x86 decoding and per-mnemonic semantics."""
