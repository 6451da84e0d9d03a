//! The process's life under a service manager: which signals it waits
//! for, and systemd's readiness notification (`Type=notify`).

/// Blocks SIGTERM, SIGINT, SIGHUP (reload zones) and SIGUSR2 (reload the
/// Corefile) in this thread (and so in every thread it starts); returns
/// the set for `wait_for_signal`.
pub fn block_shutdown_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset initialise a local set;
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR2] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

pub fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: `set` is initialised; sigwait writes one int.
    while unsafe { libc::sigwait(set, &mut signal) } != 0 {}
    signal
}

/// Tells systemd (`Type=notify`) about our state, when it asked to know.
pub fn notify_systemd(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|address| socket.send_to_addr(message.as_bytes(), &address))
        }
        None => socket.send_to(message.as_bytes(), &path),
    };
    if let Err(error) = sent {
        eprintln!("ringdns: warning: cannot notify systemd at {path}: {error}");
    }
}
