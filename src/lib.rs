//! foodcheck: backend for a district market supervision bureau's food-safety field work.
//!
//! Data flows one way: [`http`] (the edge) → domain modules (pure rules: [`auth`],
//! [`establishment`], [`checklist`], [`geo`], [`plan`]) → [`store`] (SQL).

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod calendar;
pub mod checklist;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod establishment;
pub mod export;
pub mod followup;
pub mod geo;
pub mod http;
pub mod lists;
pub mod ops;
pub mod photo;
pub mod plan;
pub mod public;
pub mod review;
pub mod sampling;
pub mod state;
pub mod stats;
pub mod storage;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod text;
