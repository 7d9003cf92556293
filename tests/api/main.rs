//! One integration-test binary (one link step), one module per area.

#[macro_use]
mod common;

mod accounts;
mod announcements;
mod audit;
mod auth;
mod checklists;
mod errors;
mod establishments;
mod followup;
mod hostile;
mod inspections;
mod list_fill;
mod list_photos;
mod lists;
mod permissions;
mod plans;
mod public_data;
mod public_filters;
mod queues;
mod review;
mod review_fixture;
mod sample_attachments;
mod sample_facts;
mod sampling;
mod sampling_plans;
mod spec;
mod stats;
mod sync;
mod sync_attachments;
mod sync_compress;
mod sync_cursor;
mod sync_edge;
mod sync_group;
mod sync_samples;
mod sync_stream;
mod uploads;
