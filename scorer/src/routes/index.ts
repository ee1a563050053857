// The scorer's route modules, in the order their routes are registered.

import type { RouteModule } from './deps';
import { metaRoutes } from './meta';
import { scoreRoutes } from './score';
import { shadowRoutes } from './shadow';
import { v2Routes } from './v2';

export const SCORER_ROUTES: readonly RouteModule[] = [scoreRoutes, metaRoutes, v2Routes, shadowRoutes];
