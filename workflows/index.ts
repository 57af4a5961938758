export { migrateService, progressQuery } from './migrate-service';
export { deployService, undeployService } from './deploy-service';
export * from './rebalance';
export { migrationLock } from './migration-lock';
