//! The client against a real SPU on 127.0.0.1:0.

mod admin;
mod produce;
mod spu;
