"""Training data for Jacobi Forcing: prompt sources, noise schedules, packing trajectories into sequences."""
