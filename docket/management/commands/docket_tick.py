import time

from django.core.management.base import BaseCommand, CommandError

from docket.periodic import job_run, jobs


class Command(BaseCommand):
    help = "Run every periodic job once, now, synchronously."

    def handle(self, *args, **opts):
        failed = []
        for job in jobs():
            started = time.monotonic()
            try:
                result = job_run(job.name)
            except Exception as e:  # report every job, then fail
                failed.append(job.name)
                self.stderr.write(f"{job.name}: failed: {e!r}")
                continue
            took = (time.monotonic() - started) * 1000
            suffix = f" -> {result}" if result is not None else ""
            self.stdout.write(f"{job.name}: ok in {took:.0f} ms{suffix}")
        if failed:
            raise CommandError(f"{len(failed)} job(s) failed: {', '.join(failed)}")
