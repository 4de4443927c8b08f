"""`edgelstm sample`: write the bundled sample data sets."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path), default="sample_data")
@click.option("--seed", default=0, show_default=True, help="Generator seed (the data is deterministic).")
def sample(out_dir: Path, seed: int) -> None:
    """Write sample data: activity.csv (6-axis IMU, 4 activities) and forecast.csv (load, temperature)."""
    from ..data.sample import write_activity_csv, write_forecast_csv
    from ..models.modeldir import check_output_dir

    check_output_dir(out_dir)

    a = write_activity_csv(out_dir / "activity.csv", seed=seed)
    f = write_forecast_csv(out_dir / "forecast.csv", seed=seed)
    click.echo(f"{a}\n{f}")
