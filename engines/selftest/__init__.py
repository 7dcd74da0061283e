"""A tiny, real trainer (an MLP fitted to seeded synthetic data) that exercises the job runner."""
