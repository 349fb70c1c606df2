"""Self-describing HDF5 results files and resumable sweeps.

Modules: ``format`` (what a file holds: layout, units, writing and reading groups, the root view
with named dimensions), ``store`` (how it reaches the disk: atomic, O(point) per finished point),
``sweep`` (points, identity, run and resume), ``dataset`` (``load``: the file as an xarray Dataset),
``frames`` (trajectory arrays), ``tables`` (text tables). The public names are re-exported here.

A results file holds one *sweep*: a list of points, each one ``wow.run`` of a Config, together with
everything needed to reproduce it. It is plain HDF5 (h5py, h5dump); the schema is in the README
("Results files") and summarised here::

    /                      attrs: format='wow-results', format_version, experiment, description,
                           created_utc, command, seed, n_samples, n_points, inputs_json (the sweep's
                           identity, canonical JSON), inputs_sha256, wall_s (sum over points), and the
                           provenance of the run that created the file (wow_version, git_commit,
                           jax_version, numpy_version, h5py_version, python_version, device, dtype)
    /inputs/<name>         the experiment's own inputs (lists of T, N, ...), attrs units, doc
    /extras/<name>         what the experiment computes from its inputs alone (analytic tables), if any
    /points/p0000 ...      one group per finished point; attrs label, index, n_samples, seed,
                           config_json, values_json, sweep.<axis> (this point's coordinates), wall_s,
                           compile_s, run_s, finished_utc, warnings (JSON list, if any), options_json
                           (a custom runner's inputs), and the provenance of the process that ran it
      config/<field>       every Config input as a scalar dataset with attr units
                           (electron.bond_defects: (n, 2) [bond index, δt eV])
      per_sample/<tally>   (n_samples,) one value per thermal sample, attrs units, doc
      stats/<tally>        (2,) [mean, standard error], attr units
      coherent/<name>      scalars: P_tot, P_coh, P_coh_plugin, their _sem, coherent_fraction
      times                (n_frames+1,) fs
      trace_mean/<name>, trace_sem/<name>   (n_frames+1,) mean and standard error over samples
      trajectories/        only when asked: the first n_traj samples, frame by frame (chunked, gzip):
                           sample_index (n_traj,), x (N,) Å, k (N,) 1/Å ascending,
                           density (n_traj, F, N) |ψ_n|², momentum (n_traj, F, N) |ψ~(k)|²,
                           u (n_traj, F, N) Å, E_band, E_recoil, E_lattice (n_traj, F) eV,
                           P_R (eV·fs/Å), P_b, x_mean, k_mean, norm (n_traj, F)
    /<axis>, /sample, /time, /<tally>, /<tally>_mean, ...
                           the root view (format.write_view): HDF5 dimension scales and virtual
                           datasets over the points' own data, so xarray/h5netcdf open the file
                           with named dimensions

Units are CF ``units`` attributes (UDUNITS spelling: angstrom, eV, fs, amu, K, eV*fs/angstrom, '1'
when dimensionless). Writes (``store``): the file is created whole (write, fsync, os.replace); each
finished point goes to its own file NAME.parts/pNNNN.h5 the same way, so a point costs O(point) and
never touches what is written; the last point's end merges the parts into one new file that
replaces NAME atomically. At every instant NAME is a complete, readable file and the parts are
complete points; a killed run loses only the point in progress. Rerunning with the same file skips
the points it holds; a file made with different inputs is refused unless ``overwrite=True``.
"""

from . import dataset as dataset, format as format, frames as frames, store as store, sweep as sweep, tables as tables
from .dataset import load as load
from .format import (CONFIG_UNITS as CONFIG_UNITS, FORMAT as FORMAT, FORMAT_VERSION as FORMAT_VERSION,
                     TALLY_UNITS as TALLY_UNITS, PointData as PointData, Results as Results,
                     ResultsError as ResultsError, check_file as check_file, config_from_flat as config_from_flat,
                     config_to_flat as config_to_flat, git_commit as git_commit, provenance as provenance,
                     read_results as read_results)
from .frames import trajectory_frames as trajectory_frames
from .sweep import Point as Point, run_sweep as run_sweep, sweep_identity as sweep_identity
from .tables import format_table as format_table, summary_table as summary_table

#: How a sweep reaches the disk (benchmarks/write_cost.py prints it beside its timings).
WRITE_SCHEME = "one file per point (NAME.parts/), merged once at the end"
