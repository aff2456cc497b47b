//! netmap-core: the OS-independent netmap engine.
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
