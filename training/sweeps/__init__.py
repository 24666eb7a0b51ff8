"""Sweeps: plans of runs (jobs, units), the front door that walks them through their stages, the engines that run
them (inline, local processes, Ray) and a job's worker process."""
