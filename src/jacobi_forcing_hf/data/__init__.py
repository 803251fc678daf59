"""Training data for Jacobi Forcing: prompt sources, noise schedules, packing, the 4D-mask data collator."""
