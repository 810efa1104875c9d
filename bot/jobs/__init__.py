"""The job engine: poller, worker, delivery, schedule, outcomes, split/stitch, text jobs, ports."""
