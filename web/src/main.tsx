import { render } from 'preact';
import { App } from './app';
import './styles.css';

performance.mark('atlas-start');
render(<App />, document.getElementById('app')!);
