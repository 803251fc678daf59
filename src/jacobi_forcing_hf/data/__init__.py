"""Training data for Jacobi Forcing: noise schedules, packing into training sequences, the data collator."""
