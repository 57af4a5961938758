/**
 * The decisions of a migratable instance, free of I/O: what to do with each delivery and each control
 * command. MigratableService is the transport around them.
 */
export * from './state';
export * from './deliveries';
export * from './commands';
export * from './outgoing';
