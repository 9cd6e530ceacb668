//! How a child finds the connection it inherited from its host.

/// Environment variable telling a child the descriptors it inherited, as
/// `"<socket>,<doorbell>,<wake>"` (see [`ChildFds`]).
pub const FDS_ENV: &str = "TROUPE_FDS";

/// Where a child finds the descriptors of its connection: the host puts them at these
/// numbers when it spawns the child, and names them in [`FDS_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFds {
    /// The child's end of the socket pair.
    pub socket: i32,
    /// The doorbell page ([`Doorbell::adopt`](crate::transport::Doorbell::adopt)).
    pub doorbell: i32,
    /// The eventfd that wakes the host's reader ([`Wake`](crate::transport::Wake)).
    pub wake: i32,
}

impl ChildFds {
    /// The numbers the host uses.
    pub const STANDARD: ChildFds = ChildFds {
        socket: 3,
        doorbell: 4,
        wake: 5,
    };

    /// The value of [`FDS_ENV`] for these numbers.
    pub fn to_env(self) -> String {
        format!("{},{},{}", self.socket, self.doorbell, self.wake)
    }

    /// Parses the value of [`FDS_ENV`]; `None` when it is not three descriptor numbers.
    pub fn from_env(value: &str) -> Option<ChildFds> {
        let mut numbers = value.split(',').map(|n| n.trim().parse::<i32>().ok());
        let fds = ChildFds {
            socket: numbers.next()??,
            doorbell: numbers.next()??,
            wake: numbers.next()??,
        };
        let valid = numbers.next().is_none()
            && [fds.socket, fds.doorbell, fds.wake]
                .iter()
                .all(|fd| *fd > 2);
        valid.then_some(fds)
    }
}
