"""Pictures: molecule grids (RDKit), training curves, latent maps, property histograms and optimization
trajectories (matplotlib)."""
from molvae.plotting.charts import latent_map, plot_history, plot_latent, plot_properties
from molvae.plotting.molecules import grid, show
from molvae.plotting.trajectories import plot_trajectories, trajectory_summary

__all__ = ["grid", "show", "plot_history", "plot_latent", "plot_properties", "latent_map", "plot_trajectories",
           "trajectory_summary"]
