"""The job engine: poller, worker, delivery, schedule, outcomes, split/stitch, text jobs, and the
small store roles each declares (Queue, JobSteps, PartStore, ReplyMarks, SpeedStore)."""
