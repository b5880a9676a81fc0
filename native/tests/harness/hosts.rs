//! Where a test cluster's nodes and clients run.

use std::process::Command;

/// The machines of a test cluster: one per node, and one for the clients.
pub trait Hosts {
    /// How many nodes there are room for.
    fn size(&self) -> usize;
    /// Node `id`'s address (1-based), `HOST:PORT`.
    fn address(&self, id: usize) -> String;
    /// Names or addresses the node certificate needs besides the defaults
    /// (localhost, 127.0.0.1, ::1).
    fn certificate_hosts(&self) -> Vec<String>;
    /// A command that runs `program` on node `id`'s host.
    fn on_node(&self, id: usize, program: &str) -> Command;
    /// A command that runs `program` where the clients run.
    fn on_clients(&self, program: &str) -> Command;
    /// [`Hosts::on_clients`] as a function of its own, for threads.
    fn clients_launcher(&self) -> Launcher;
}

/// Makes a command that runs a program where the clients run.
pub type Launcher = Box<dyn Fn(&str) -> Command + Send + Sync>;

/// Every node on 127.0.0.1, each on a free UDP port picked at start; the
/// clients there too.
#[derive(Debug)]
pub struct Loopback {
    /// Node `id` listens on `ports[id - 1]`.
    pub ports: Vec<u16>,
}

impl Loopback {
    /// Room for `nodes` nodes.
    pub fn new(nodes: usize) -> Loopback {
        // The sockets are held until every port is picked: released one by
        // one, the kernel may hand the same port out twice.
        let sockets: Vec<std::net::UdpSocket> = (0..nodes)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        Loopback {
            ports: sockets
                .iter()
                .map(|socket| socket.local_addr().unwrap().port())
                .collect(),
        }
    }
}

impl Hosts for Loopback {
    fn size(&self) -> usize {
        self.ports.len()
    }

    fn address(&self, id: usize) -> String {
        format!("127.0.0.1:{}", self.ports[id - 1])
    }

    fn certificate_hosts(&self) -> Vec<String> {
        Vec::new()
    }

    fn on_node(&self, _id: usize, program: &str) -> Command {
        Command::new(program)
    }

    fn on_clients(&self, program: &str) -> Command {
        Command::new(program)
    }

    fn clients_launcher(&self) -> Launcher {
        Box::new(|program: &str| Command::new(program))
    }
}
