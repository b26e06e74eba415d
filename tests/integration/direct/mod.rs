//! Direct mode: container runners run as Jobs on the real test cluster (and, when asked, on the
//! managed cluster of `KUBECONFIG`); the resources, the run lifecycle, faults, production
//! namespaces and git servers, and the helper image in a pod.

mod faults;
mod git_server;
mod helper_image;
mod production;
mod resources;
mod runs;
