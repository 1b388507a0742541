"""Guest front ends: decode guest machine code and lift it into IR translation blocks."""
