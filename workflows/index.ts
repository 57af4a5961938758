export { migrateService, progressQuery } from './migrate-service';
export { deployService, undeployService } from './deploy-service';
export * from './rebalance';
