from django.core.management.base import BaseCommand, CommandError

from reviews.statements import BACKFILL_BATCH, statements_backfill

MAX_BATCH = 5000


class Command(BaseCommand):
    help = (
        "Make the statements of reasons that earlier decisions lack (restrictions decided before statements "
        "were stored with the decision), in bounded batches; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BACKFILL_BATCH,
            metavar="N",
            help=f"Decisions per transaction (1 to {MAX_BATCH}; default {BACKFILL_BATCH}).",
        )
        parser.add_argument(
            "--max-batches", type=int, metavar="N", help="Stop after N batches (default: until none is left)."
        )

    def handle(self, *args, **opts):
        batch_size, max_batches = opts["batch_size"], opts["max_batches"]
        if not 1 <= batch_size <= MAX_BATCH:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH}.")
        if max_batches is not None and max_batches < 1:
            raise CommandError("--max-batches must be at least 1.")
        result = statements_backfill(batch_size=batch_size, max_batches=max_batches)
        for decision_id, message in sorted(result["refused"].items()):
            self.stderr.write(f"decision {decision_id}: no statement made: {message}")
        self.stdout.write(f"{result['made']} statement(s) made, {len(result['refused'])} decision(s) refused.")
