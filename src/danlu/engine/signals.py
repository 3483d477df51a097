"""SIGINT (Ctrl-C) and SIGTERM (what Slurm, Kubernetes and spot instances send before preempting a
job) during training: both become `Interrupted`, raised only where the state a checkpoint would save
is consistent."""
import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption); `signum` says which."""

    def __init__(self, message="interrupted", signum=signal.SIGINT):
        super().__init__(message)
        self.signum = signum


class Signals:
    """While training, SIGINT and SIGTERM raise `Interrupted`; inside `deferred()` (an optimizer step, the
    end of an epoch) they are held until the block ends, so the state an interrupt saves is never half-updated."""

    def __init__(self):
        self.held, self.pending, self.previous = False, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def _handle(self, signum, _frame):
        if self.held:
            self.pending = signum
        else:
            raise Interrupted(signum=signum)

    @contextlib.contextmanager
    def deferred(self):
        self.held = True
        try:
            yield
        finally:
            self.held = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum=signum)
