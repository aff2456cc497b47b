//! The netmap userspace ABI, API version 14.
#![cfg_attr(not(feature = "std"), no_std)]
