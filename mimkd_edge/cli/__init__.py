"""The `mimkd-edge` command line: thin commands that parse, call the library, and render with rich.

Heavy imports (torch, onnx, openvino) happen inside the commands so `--help` stays instant.
Errors the user can fix are one line on stderr with exit code 2 (3 for a diverged run; 4 for an
export of which an artifact failed its check and the others were published); so is a package the
command needs that is not installed (errors.INSTALL_HINTS).
"""

from __future__ import annotations

import click

from ..errors import UserError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as e:
            from ..console import error_line

            error_line(str(e))
            ctx.exit(e.exit_code)
        except OSError as e:  # the environment, not the input: a read-only folder, a full disk, ...
            from ..console import error_line

            where = f"{e.filename}: " if e.filename else ""
            error_line(f"{where}{e.strerror or e}")
            ctx.exit(2)
        except ImportError as e:  # a package this command needs is not installed (a device with one runtime)
            from ..console import error_line
            from ..errors import missing_package_line

            line = missing_package_line(e, ctx.invoked_subcommand)
            if line is None:
                raise
            error_line(line)
            ctx.exit(2)
        except KeyboardInterrupt:
            from ..console import error_line

            error_line("interrupted; the last checkpoint is intact (continue with --resume)")
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mimkd-edge")
def main() -> None:
    """Distil large image classifiers into tiny, fast CPU models (MIMKD), export and measure them."""


from . import models as _models  # noqa: E402,F401  (each module adds its commands to `main`)
from . import recipe as _recipe  # noqa: E402,F401
from . import train as _train  # noqa: E402,F401
from . import sweep as _sweep  # noqa: E402,F401
from . import export as _export  # noqa: E402,F401
from . import bench as _bench  # noqa: E402,F401
from . import predict as _predict  # noqa: E402,F401
from . import probe as _probe  # noqa: E402,F401
from . import teacher as _teacher  # noqa: E402,F401
