"""Training: a small BPE tokenizer, a memory-mapped code corpus, and the MTP + load-balancing trainer."""
