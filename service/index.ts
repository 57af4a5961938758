export * from './protocol';
export { MigratableService, type ServiceOptions, type InputMessage, type ApplyContext } from './migratable-service';
export { StampingProducer, type Published } from './producer';
export { ControlClient, ControlError } from './control-client';
