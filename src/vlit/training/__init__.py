"""Training: stages that say what learns, one loop on Accelerate, a frozen-feature cache, exact resume."""
